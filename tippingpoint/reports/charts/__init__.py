"""Chart figures: format-neutral specs, an inline-SVG writer and a matplotlib PNG writer."""
