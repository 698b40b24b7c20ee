"""What several apps share and no app owns.

- multirow: multi-row INSERT/UPDATE and reads by many keys, one statement per table.
- stamped_cache: a per-process cache rebuilt when its table's change stamp moves.
- soft_delete: the seed's `deleted_at` soft delete.
- lifecycle: the authoring workflow (draft → live → retired) of task configs and rules.
- workflow_admin: the admin's workflow steps, history and frozen fields for those models.
- sheets: spreadsheet plumbing for the rule sheets (safe text cells, strict XLSX).
- periods: calendar periods in the site's time zone.
"""
