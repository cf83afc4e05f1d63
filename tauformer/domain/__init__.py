"""Domain memory: embeddings -> feature graph -> D x D Laplacian (SPEC section 7).

Public API::

    from tauformer.domain import (
        load_embedding, EmbeddingSet, embed_texts,          # inputs
        build_domain_memory, DomainMemory,                  # the pipeline and its result
        save_domain_memory, load_domain_memory,             # files
        import_reference_manifold,                          # the reference's parquet
        laplacian_spectrum, spectrum_summary, connected_components, spectral_gap, degree_stats,
        item_lambdas, select_tau, item_knn_graph,           # per-item analysis
        graph_structure, GraphStructure,                    # degrees, hubs, hub-and-spoke test
    )
"""

from .builder import build_domain_memory
from .embed import embed_texts, sentence_model_available
from .io import load_domain_memory, save_domain_memory
from .items import ItemLambdas, item_knn_graph, item_lambdas, select_tau
from .loaders import EmbeddingSet, load_embedding
from .memory import DomainMemory, fingerprint_laplacian
from .reference import import_reference_manifold
from .spectrum import Spectrum, connected_components, degree_stats, laplacian_spectrum, spectral_gap, spectrum_summary
from .structure import GraphStructure, graph_structure

__all__ = [
    "DomainMemory",
    "EmbeddingSet",
    "GraphStructure",
    "ItemLambdas",
    "Spectrum",
    "build_domain_memory",
    "connected_components",
    "degree_stats",
    "embed_texts",
    "fingerprint_laplacian",
    "graph_structure",
    "import_reference_manifold",
    "item_knn_graph",
    "item_lambdas",
    "laplacian_spectrum",
    "load_domain_memory",
    "load_embedding",
    "save_domain_memory",
    "select_tau",
    "sentence_model_available",
    "spectral_gap",
    "spectrum_summary",
]
