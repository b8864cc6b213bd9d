"""What every endpoint uses: the request's session and caller, reading inputs, routes that
refuse unknown parameters, the rate limit. Below every domain; the app is in fold.web."""
