"""Payments through a gateway, promo codes and recurring subscription renewals."""
