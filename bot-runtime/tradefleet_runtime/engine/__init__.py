"""The event engine: one loop per bot, bar → strategy → risk chain → broker → fills → journal."""
