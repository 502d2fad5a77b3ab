"""The part of pylive that runs inside Lambda, shipped as it is into bundles: the relay's stub
and router (``handlers/``, the stub's workings in ``stub/``), the relay protocol, SigV4
signing, the stub's settings, and the database connection functions use. Standard library
only, apart from the drivers a bundle carries (websockets, boto3, PyMySQL, SQLAlchemy)."""
