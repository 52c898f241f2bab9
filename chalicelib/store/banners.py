"""Site banners shown by /api/about, all in one partition so listing them is a Query, not a Scan."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .base import TableMeta, table

PARTITION = "banner"


class Banner(Model):
    class Meta(TableMeta):
        table_name = table("banners")

    kind = UnicodeAttribute(hash_key=True, default=PARTITION)
    id = NumberAttribute(range_key=True)
    html = UnicodeAttribute()
    urgency = NumberAttribute()


def all_banners() -> list[Banner]:
    return list(Banner.query(PARTITION))
