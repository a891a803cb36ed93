"""Relations the todos app does not have: multi-table inheritance, a
self-referencing tree, an explicit M2M through model, a generic foreign key and
a foreign key to a non-primary unique field."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")

    def __str__(self) -> str:
        return self.name


class DigitalProduct(Product):
    """Multi-table inheritance: a row here has a parent row in Product."""

    download_url = models.URLField()
    size_mb = models.PositiveIntegerField(default=1)


class Supplier(models.Model):
    name = models.CharField(max_length=100, unique=True)
    products = models.ManyToManyField(Product, through="Supply", related_name="suppliers")


class Supply(models.Model):
    """An explicit through model with data of its own."""

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    lead_days = models.PositiveIntegerField()

    class Meta:
        unique_together = [("supplier", "product")]


class StockEntry(models.Model):
    """A foreign key to a unique non-primary field."""

    product = models.ForeignKey(
        Product, to_field="sku", db_column="product_sku", on_delete=models.CASCADE
    )
    quantity = models.IntegerField()


class Review(models.Model):
    """A generic foreign key: reviews of products or categories."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    stars = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
