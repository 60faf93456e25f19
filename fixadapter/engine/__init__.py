"""The asyncio side: order lifecycle, reconciliation, and delivery to consumers. Imports no quickfix."""
