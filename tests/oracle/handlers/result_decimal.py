from decimal import Decimal


def handler(event, context):
    return {"price": Decimal("12.50"), "nan": Decimal("NaN")}
