"""Mailing-list series: parsing mail, fetching series with b4, replying, the watch bot."""
