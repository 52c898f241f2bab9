"""Every body passes API Gateway as bytes (``*/*`` binary media type).

Audio uploads, multipart forms and audio downloads must not be mangled by a text conversion, and
the stock runner's ``Accept: */*`` must get the raw bytes back. With ``*/*`` API Gateway
base64-encodes every request body and decodes every base64 response; Chalice does both sides.
"""

BINARY_TYPES = ["*/*"]
