def load_config():
    raise RuntimeError("config unavailable")


CONFIG = load_config()


def handler(event, context):
    return CONFIG
