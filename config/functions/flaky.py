def handler(event, context):
    raise RuntimeError("this function always fails, so its events end in the dead-letter queue")
