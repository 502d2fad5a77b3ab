def handler(event, context):
    return {"ok": True, "n": 1, "nested": {"list": [1, 2.5, None, "x"]}}
