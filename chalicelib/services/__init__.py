"""Domain logic. Services see plain data and ``chalicelib.errors``; never botocore types."""
