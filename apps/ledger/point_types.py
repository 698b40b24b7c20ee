"""The default point type: what every rule, sheet row, adjustment and API call that names no type uses."""


def default_point_type_id() -> int:
    """The default point type's id (a migration creates the type; a test's flush may remove it, so it is remade)."""
    from apps.ledger.models import PointType

    found = PointType.objects.filter(is_default=True).values_list("pk", flat=True).first()
    if found is None:
        found = PointType.objects.get_or_create(is_default=True, defaults={"code": "points", "name": "Points"})[0].pk
    return found


def point_type_by_code(code: str | None):
    """The point type of `code`, the default one for an empty code, or None if there is no such type."""
    from apps.ledger.models import PointType

    if not code:
        return PointType.objects.get(pk=default_point_type_id())
    return PointType.objects.filter(code=code).first()
