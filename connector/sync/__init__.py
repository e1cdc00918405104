"""The ERP back to the stores, on a schedule: stock levels, shipments, receipts, refused parcels and the
ERP's own refunds; and reconciliation (and polling), which lists what the webhooks may have missed."""
