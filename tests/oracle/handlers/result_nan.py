def handler(event, context):
    return {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")}
