"""Writes of the rewards app, one module per subject.

- items: the catalogue's authoring workflow (editing → review → active → retired), frozen fields, copy as draft.
"""
