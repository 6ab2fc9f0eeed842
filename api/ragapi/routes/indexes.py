"""The indexes a caller may use (they are declared as RagIndex resources, not here)."""

from __future__ import annotations

import json

from fastapi import APIRouter

from ragapi.deps import PrincipalDep, StateDep
from ragapi.routes._errors import errors
from ragapi.schemas import IndexList, IndexPublic
from ragapi.store.indexes import list_indexes

router = APIRouter(prefix="/v1/indexes", tags=["indexes"])


@router.get("", response_model=IndexList, summary="Indexes this key may use", responses=errors())
async def get_indexes(state: StateDep, principal: PrincipalDep) -> IndexList:
    records = await list_indexes(state.pool)
    return IndexList(
        indexes=[
            IndexPublic(
                name=r.name,
                dimensions=r.dimensions,
                distance=r.spec.distance.value,
                embedding_model=r.spec.embedding.model,
                content_version=r.content_version,
                hnsw_index=r.hnsw_index,
                spec=json.loads(r.spec.model_dump_json(by_alias=True)),
            )
            for r in records
            if not principal.indexes or r.name in principal.indexes
        ]
    )
