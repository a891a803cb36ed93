from __future__ import annotations

import json

from django.contrib.contenttypes.models import ContentType
from django.db.models import Avg, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Category, DigitalProduct, Product, Review, StockEntry, Supplier, Supply


def category_tree(request: HttpRequest, slug: str) -> HttpResponse:
    category = get_object_or_404(Category, slug=slug)
    ancestors = []
    node = category.parent
    while node is not None:
        ancestors.append(node)
        node = node.parent
    return render(
        request,
        "catalog/category.html",
        {
            "category": category,
            "ancestors": list(reversed(ancestors)),
            "children": list(category.children.order_by("name")),
            "product_count": category.products.count(),
        },
    )


def digital_product(request: HttpRequest, pk: int) -> JsonResponse:
    product = get_object_or_404(DigitalProduct, pk=pk)
    return JsonResponse(
        {
            "sku": product.sku,
            "name": product.name,
            "price": str(product.price),
            "category": product.category.slug,
            "download_url": product.download_url,
        }
    )


def product_suppliers(request: HttpRequest, sku: str) -> JsonResponse:
    product = get_object_or_404(Product, sku=sku)
    supplies = (
        Supply.objects.filter(product=product).select_related("supplier").order_by("lead_days")
    )
    stock = (
        StockEntry.objects.filter(product=product).aggregate(total=Sum("quantity"))["total"] or 0
    )
    return JsonResponse(
        {
            "sku": product.sku,
            "suppliers": [{"name": s.supplier.name, "lead_days": s.lead_days} for s in supplies],
            "stock": stock,
        }
    )


def product_reviews(request: HttpRequest, sku: str) -> JsonResponse:
    product = get_object_or_404(Product, sku=sku)
    reviews = Review.objects.filter(
        content_type=ContentType.objects.get_for_model(Product), object_id=product.pk
    )
    return JsonResponse(
        {
            "average": reviews.aggregate(avg=Avg("stars"))["avg"],
            "texts": list(reviews.order_by("id").values_list("text", flat=True)),
        }
    )


@csrf_exempt
@require_POST
def add_supply(request: HttpRequest, sku: str) -> JsonResponse:
    product = get_object_or_404(Product, sku=sku)
    data = json.loads(request.body)
    supplier = get_object_or_404(Supplier, name=data["supplier"])
    supply = Supply.objects.create(
        supplier=supplier, product=product, lead_days=int(data["lead_days"])
    )
    return JsonResponse({"supplier": supplier.name, "lead_days": supply.lead_days}, status=201)


@csrf_exempt
@require_POST
def review_product(request: HttpRequest, sku: str) -> JsonResponse:
    product = get_object_or_404(Product, sku=sku)
    data = json.loads(request.body)
    review = Review.objects.create(
        target=product, stars=int(data["stars"]), text=data.get("text", "")
    )
    return JsonResponse({"stars": review.stars}, status=201)
