from urllib.parse import unquote_plus


def handler(event, context):
    for record in event.get("Records", []):
        key = unquote_plus(record["s3"]["object"]["key"])
        size = record["s3"]["object"].get("size")
        print(f"{record['eventName']} s3://{record['s3']['bucket']['name']}/{key} ({size} bytes)")
    return {"processed": len(event.get("Records", []))}
