"""The strategy queue: versioned JSON commands in, order events out, over Redis Streams or in-process."""
