"""rollguard_sqlalchemy: the SQLAlchemy / Alembic side of rollguard.

    import rollguard_sqlalchemy
    rollguard_sqlalchemy.manifest(Base.metadata)        # -> {"relations": {...}}

and the command line (python3 -m rollguard_sqlalchemy --help): manifest,
register, deploy, check (alembic upgrade --sql through rollguard.check()).
"""
from rollguard_sqlalchemy.manifest import count_columns, manifest, manifest_json

__all__ = ["manifest", "manifest_json", "count_columns"]
__version__ = "1.7.0"
