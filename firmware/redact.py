"""Screening text for secrets (README "Security"), for firmware/log.py: loaded the first time
a line holds a URL with "@" or a traceback is printed while secrets are set."""
from firmware.compat import print_exception


def hide_credentials(text):
    """`text` with the password of every URL's userinfo replaced by "***"
    ("ws://cp1:***@host/"): a URL is logged, never its credentials."""
    i = text.find("://")
    while i >= 0:
        start = i + 3
        end = start
        while end < len(text) and text[end] not in "/?# \"'<>":
            end += 1
        at = text.rfind("@", start, end)
        colon = text.find(":", start, at) if at > 0 else -1
        if colon >= 0:
            text = text[:colon + 1] + "***" + text[at:]
            end = colon + 4
        i = text.find("://", end)
    return text


def print_screened(e, secrets):
    """Print the traceback of `e` with every value of `secrets` and URL password hidden."""
    import io
    buf = io.StringIO()
    print_exception(e, buf)
    text = buf.getvalue()
    for secret in secrets:
        text = text.replace(secret, "***")
    print(hide_credentials(text), end="")
