def handler(event, context):
    print(f"sweep at {event.get('time')} (rule {event.get('resources', ['?'])[0]})")
    return {"swept": True}
