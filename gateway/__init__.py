"""CRM GraphQL gateway: one Relay schema over several CRM REST APIs."""
