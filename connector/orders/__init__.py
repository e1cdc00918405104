"""From the inbox to the ERP: each event drained, handled by its platform's topic handler, and brought
into the ERP once (lifecycle, customers, holds and approvals, routing, attribution, privacy requests)."""
