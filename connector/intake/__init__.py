"""The door: webhook deliveries checked by their platform's rules and kept in the inbox, once each."""
