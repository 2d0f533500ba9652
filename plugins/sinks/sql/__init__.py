"""The SQL record sink: one SQLAlchemy implementation serving every relational database as a dialect.

``plugin`` registers it (cheap to import); ``sink`` holds the implementation and is imported only
when a pipeline uses it, so ``rcetl --help`` never pays for SQLAlchemy's dialect machinery.
"""
