"""schemathesis hooks for scripts/check-api.

POST /events takes NDJSON (application/x-ndjson). docs/openapi.yaml describes
its lines as a list of items (or a single item); this serializer writes each
item of the list as one line, as a producer would.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode()
    return (json.dumps(value) + "\n").encode()
