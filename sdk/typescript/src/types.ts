/**
 * types.ts - the shapes of API.md's objects, as the server sends them
 * (snake_case field names, RFC 3339 times as strings). Every interface
 * accepts extra fields, so a newer server's additions pass through.
 */

export type Json = Record<string, unknown>;

export interface Pagination { total: number; limit: number; offset: number; has_more: boolean }
export interface Page<T> { data: T[]; pagination: Pagination }

export interface RegisterResponse { user_id: string; email: string; api_key: string; [k: string]: unknown }
export interface LoginResponse { user_id: string; email: string; [k: string]: unknown }
export type Scope = "read" | "write" | "admin";
export interface ApiKey {
  id: string; name: string; prefix: string; scopes: Scope[]; created_at: string;
  last_used_at: string | null; workspace_id?: string; api_key?: string; [k: string]: unknown;
}
export interface Workspace { id: string; name: string; role?: string; [k: string]: unknown }
export type Role = "reader" | "editor" | "admin";
export interface Member { user_id: string; email: string; role: Role; [k: string]: unknown }

export interface CollectionConfig { chunk_size?: number; chunk_overlap?: number; embedder?: string; graph?: boolean }
export interface Collection {
  id: string; user_id: string; name: string; description: string | null; metadata: Json;
  config: CollectionConfig & Json; document_count: number; chunk_count: number;
  created_at: string; updated_at: string; [k: string]: unknown;
}

export type DocumentState = "pending" | "processing" | "completed" | "failed";
export interface Document {
  id: string; collection_id: string; user_id: string; title: string | null; filename: string | null;
  content_type: string; size_bytes: number; content_hash: string; status: DocumentState; metadata: Json;
  processing_info: { chunk_count?: number; total_tokens?: number; [k: string]: unknown };
  error_message?: string | null; created_at: string; updated_at: string; [k: string]: unknown;
}
export interface DocumentStatus {
  document_id: string; status: DocumentState; chunk_count: number; total_tokens: number;
  error_message: string | null; processing_info: Json; created_at: string; processed_at: string | null;
  [k: string]: unknown;
}
export interface Chunk {
  id: string; document_id: string; chunk_index: number; content: string; token_count: number;
  metadata: Json; [k: string]: unknown;
}
export interface SignedUrl { url: string; expires_in: number; filename: string; content_type: string }

export type RetrievalMode = "semantic" | "keyword" | "hybrid" | "graph" | "hierarchical";
export interface RetrievalRequest {
  query: string; mode?: RetrievalMode; top_k?: number; collection_id?: string; rerank?: boolean;
  enable_graph?: boolean; metadata_filter?: Json; explain?: boolean;
}
export interface RetrievalResult {
  chunk_id: string; content: string; chunk_index: number; score: number; metadata: Json;
  chunk_metadata: Json; document: { id: string; title: string | null; filename: string | null; metadata: Json };
  collection_id: string;
  explain?: { bm25: number | null; bm25_rank: number | null; vector: number | null; vector_rank: number | null; [k: string]: unknown };
  [k: string]: unknown;
}
export interface RetrievalResponse {
  query: string; mode: RetrievalMode; total_results: number; graph_enhanced: boolean;
  processing_time_ms: number; results: RetrievalResult[]; graph_context?: string; [k: string]: unknown;
}

export interface ChatRequest {
  message?: string; messages?: { role: string; content: string }[]; session_id?: string;
  collection_id?: string;
  retrieval?: { mode?: RetrievalMode; top_k?: number; rerank?: boolean; enable_graph?: boolean; metadata_filter?: Json };
  generation?: { model?: string; temperature?: number; max_tokens?: number };
  include_memory?: boolean; custom_instruction?: string;
}
export interface ChatResponse {
  query: string; response: string; sources: Json[]; usage: Json; metadata: Json; [k: string]: unknown;
}
export interface ChatSession {
  id: string; user_id: string; collection_id: string | null; title: string | null; created_at: string;
  last_message_at: string | null; message_count: number; [k: string]: unknown;
}
export interface ChatMessage { id: string; session_id: string; role: string; content: string; created_at: string; [k: string]: unknown }

export type MemoryType = "profile" | "semantic" | "episodic" | "procedural";
export interface Memory {
  id: string; type: MemoryType; content: string; reliability: number; access_count: number; metadata: Json;
  created_at: string; updated_at: string; last_accessed_at: string | null; [k: string]: unknown;
}
export interface MemorySearchResult extends Memory {
  score: number; signals: { keyword: number; vector: number; reliability: number; recency: number; frequency: number };
}

export interface Entity { id: string; name: string; type: string; mention_count: number; [k: string]: unknown }
export interface EntityDetail extends Entity {
  relations: { target_id: string; target_name: string; relation: string; weight: number }[];
  chunk_ids: string[];
}

export interface AdminUser { user_id?: string; id?: string; email: string; [k: string]: unknown }
