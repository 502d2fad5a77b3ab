def handler(event, context):
    return {"greeting": "héllo wörld", "nested": {"emoji": "🚀", "cjk": ["日本語", "中文"]}}
