"""Delivery channels: turn one notification into one provider call (SMS, voice, Slack...)."""

from sentinel.alerting.channels.base import Channel, DeliveryResult, Message

__all__ = ["Channel", "DeliveryResult", "Message"]
