def handler(event, context):
    raise RuntimeError("échec: données invalides ✗")
