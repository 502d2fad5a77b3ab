def handler(event, context):
    return b"\x00\x01binary\xff"
