"""Deterministic catalog data, created by ``manage.py seed_example``."""

from __future__ import annotations

from decimal import Decimal

from .models import Category, DigitalProduct, Product, Review, StockEntry, Supplier, Supply


def seed_catalog() -> str:
    for model in (Review, StockEntry, Supply, Supplier, DigitalProduct, Product, Category):
        model.objects.all().delete()
    root = Category.objects.create(name="All", slug="all")
    software = Category.objects.create(name="Software", slug="software", parent=root)
    editors = Category.objects.create(name="Editors", slug="editors", parent=software)
    Category.objects.create(name="Hardware", slug="hardware", parent=root)
    keyboard = Product.objects.create(
        sku="KB-01", name="Keyboard", price=Decimal("49.90"), category=root
    )
    editor = DigitalProduct.objects.create(
        sku="ED-01",
        name="Editor Pro",
        price=Decimal("19.00"),
        category=editors,
        download_url="https://downloads.example.com/editor-pro.zip",
        size_mb=120,
    )
    acme = Supplier.objects.create(name="Acme")
    globex = Supplier.objects.create(name="Globex")
    Supplier.objects.create(name="Initech")
    Supply.objects.create(supplier=acme, product=keyboard, lead_days=3)
    Supply.objects.create(supplier=globex, product=keyboard, lead_days=7)
    StockEntry.objects.create(product=keyboard, quantity=12)
    StockEntry.objects.create(product=keyboard, quantity=-2)
    Review.objects.create(target=keyboard, stars=4, text="Solid.")
    Review.objects.create(target=keyboard, stars=5, text="Clicky.")
    Review.objects.create(target=editor, stars=3, text="Fine.")
    return "4 categories, 2 products, 3 suppliers, 3 reviews"
