"""The errors this layer raises: each says what was found and what to do about it."""


class VidpipeDatabaseError(Exception):
    """Base class of every error raised by vidpipe's data layer."""


class DatabaseURLError(VidpipeDatabaseError, ValueError):
    """The database URL is missing, malformed or names a driver that is not installed."""


class ForeignKeyViolation(VidpipeDatabaseError):
    """A migration left rows whose foreign keys point nowhere; it was rolled back."""
