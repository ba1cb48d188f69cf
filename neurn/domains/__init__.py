"""Digit domains for the NeuRN benchmark: a registry of offline loaders and generators.

    >>> import neurn
    >>> "digits" in neurn.domains.list_domains()
    True
"""
from neurn.domains.registry import (
    DOMAINS,
    DomainInfo,
    available_domains,
    get_domain,
    list_domains,
    load_domain,
    register_domain,
    split_size,
    user_file,
)

__all__ = ["DOMAINS", "DomainInfo", "available_domains", "get_domain", "list_domains", "load_domain",
           "register_domain", "split_size", "user_file"]
