// Types and small helpers for the repository / artifact / label pages
// (Harbor's `Repository`, `Artifact`, `Tag`, `Label`, `Accessory` as Berth
// answers them).
import { ROLE } from './session';

export interface Label {
  id: number;
  name: string;
  description?: string;
  color?: string;
  scope: 'g' | 'p' | string;
  project_id: number;
  creation_time?: string;
  update_time?: string;
}

export interface Repo {
  id: number;
  project_id: number;
  name: string;
  description?: string;
  artifact_count?: number;
  pull_count?: number;
  creation_time?: string;
  update_time?: string;
}

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
  'os.version'?: string;
}

export interface Reference {
  parent_id?: number;
  child_id?: number;
  child_digest: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Tag {
  id: number;
  name: string;
  push_time?: string;
  pull_time?: string;
  immutable?: boolean;
  signed?: boolean;
}

export interface Accessory {
  id: number;
  digest: string;
  type: string;
  size: number;
  creation_time?: string;
  subject_artifact_digest?: string;
}

export interface Artifact {
  id: number;
  type: string;
  media_type: string;
  manifest_media_type?: string;
  artifact_type?: string;
  digest: string;
  size: number;
  push_time?: string;
  pull_time?: string;
  extra_attrs?: Record<string, unknown>;
  annotations?: Record<string, string>;
  references?: Reference[] | null;
  tags?: Tag[] | null;
  labels?: Label[] | null;
  accessories?: Accessory[] | null;
  addition_links?: Record<string, { href: string; absolute?: boolean }>;
}

/** `linux/amd64`, `linux/arm64/v8`, `windows/amd64 (10.0.17763)`. */
export function platformString(p: Platform | null | undefined): string {
  if (!p || (!p.os && !p.architecture)) return '';
  const base = [p.os || '?', p.architecture || '?', p.variant].filter(Boolean).join('/');
  return p['os.version'] ? `${base} (${p['os.version']})` : base;
}

/** The platform of a single image, from its config (`extra_attrs`). */
export function imagePlatform(a: Artifact): string {
  const x = a.extra_attrs ?? {};
  return platformString({
    os: typeof x.os === 'string' ? x.os : undefined,
    architecture: typeof x.architecture === 'string' ? x.architecture : undefined,
    variant: typeof x.variant === 'string' ? x.variant : undefined,
  });
}

/** The repository's name within its project (`library/nginx` -> `nginx`). */
export function shortRepo(full: string, project: string): string {
  return full.startsWith(`${project}/`) ? full.slice(project.length + 1) : full;
}

/** API path of a repository in a project (name within the project). */
export function repoPath(project: string, repo: string): string {
  return `/projects/${encodeURIComponent(project)}/repositories/${encodeURIComponent(encodeURIComponent(repo))}`;
}

/** Portal route of a repository. */
export function repoRoute(projectId: number, repo: string): string {
  return `/harbor/projects/${projectId}/repositories/${encodeURIComponent(repo)}`;
}

/** Portal route of an artifact. */
export function artifactRoute(projectId: number, repo: string, digest: string): string {
  return `${repoRoute(projectId, repo)}/artifacts-tab/artifacts/${digest}`;
}

// What a project role may do here (Berth's RBAC matrix, shared/src/iam/rbac.rs);
// `role` already counts system admins as project admins.
const adminOrMaintainer = (r: number) => r === ROLE.projectAdmin || r === ROLE.maintainer;
const developerUp = (r: number) => adminOrMaintainer(r) || r === ROLE.developer;

export const may = {
  /** repository delete */
  deleteRepo: adminOrMaintainer,
  /** repository push (the push command helper) */
  push: developerUp,
  /** repository update (description) */
  editRepo: developerUp,
  /** artifact delete */
  deleteArtifact: adminOrMaintainer,
  /** tag create */
  addTag: developerUp,
  /** tag delete */
  deleteTag: adminOrMaintainer,
  /** artifact-label create/delete */
  labelArtifact: developerUp,
  /** label create/update/delete in the project */
  manageLabels: adminOrMaintainer,
};
