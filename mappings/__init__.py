"""Pure translations between storefront payloads, the canonical model and ERP documents. No I/O."""
