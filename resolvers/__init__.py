"""Resolvers: thin functions from GraphQL arguments to data-source calls."""
