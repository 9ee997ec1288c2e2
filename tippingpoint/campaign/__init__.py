"""Campaigns: one plan runs every cell on the machine it names and files every report in one tree.

A campaign plan (:mod:`~tippingpoint.campaign.plan`, TOML) names devices by kind, endpoints
(a URL, or ``tippingpoint serve`` started on a node of a named kind) and each device's runs.
:mod:`~tippingpoint.campaign.executor` runs each cell on a node of its kind through the same
harness code as ``tippingpoint run`` (:mod:`~tippingpoint.campaign.cell`), with Ray as the
distributed engine (:mod:`~tippingpoint.campaign.fleet`, imported only when a campaign runs
on a cluster), and files each finished report into one tree
(:mod:`~tippingpoint.campaign.tree`); :mod:`~tippingpoint.campaign.check` checks and merges
trees, with or without Ray.
"""
