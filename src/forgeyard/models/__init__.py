"""Every table, one module per area. Importing this package registers them all on ``metadata``.

Alembic's autogenerate and the migration check read ``metadata``, so a new model module must
be imported here.
"""

from forgeyard.kernel.db import Base
from forgeyard.models import (  # noqa: F401  (registers the tables)
    analysis,
    audit,
    ci,
    deps,
    identity,
    integrations,
    job,
    repo,
    webhook,
)

metadata = Base.metadata

__all__ = ["Base", "metadata"]
