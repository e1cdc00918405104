"""The storefront ⇄ back-office connector."""
