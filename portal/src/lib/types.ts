export interface Project {
  project_id: number;
  name: string;
  owner_name?: string;
  repo_count?: number;
  registry_id?: number | null;
  creation_time?: string;
  update_time?: string;
  current_user_role_id?: number;
  current_user_role_ids?: number[];
  metadata?: Record<string, string>;
}

export interface QuotaSummary {
  hard?: { storage?: number };
  used?: { storage?: number };
}

/** What a page inside a project gets. */
export interface ProjectProps {
  project: Project;
  /** The caller's role in the project (ROLE.*), 0 for none; system admins count as project admins. */
  role: number;
  /** Whether the caller is a system admin. */
  admin: boolean;
}
