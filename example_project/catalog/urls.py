from __future__ import annotations

from django.urls import path

from . import views

app_name = "catalog"

urlpatterns = [
    path("categories/<slug:slug>/", views.category_tree, name="category"),
    path("digital/<int:pk>/", views.digital_product, name="digital-product"),
    path("products/<str:sku>/suppliers/", views.product_suppliers, name="product-suppliers"),
    path("products/<str:sku>/suppliers/add/", views.add_supply, name="add-supply"),
    path("products/<str:sku>/reviews/", views.product_reviews, name="product-reviews"),
    path("products/<str:sku>/reviews/add/", views.review_product, name="review-product"),
]
