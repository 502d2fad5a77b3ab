def handler(event, context):
    # About 1 MB of JSON: 1024 entries of 1000 characters each.
    return {f"key{i:04d}": "x" * 1000 for i in range(1024)}
