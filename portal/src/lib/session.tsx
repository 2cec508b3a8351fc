import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface CurrentUser {
  user_id: number;
  username: string;
  email?: string;
  realname?: string;
  sysadmin_flag: boolean;
}

export interface SystemInfo {
  auth_mode: string;
  harbor_version?: string;
  registry_url?: string;
  external_url?: string;
  self_registration?: boolean;
  with_notary?: boolean;
  oidc_provider_name?: string;
}

export interface Session {
  user: CurrentUser | null;
  info: SystemInfo | null;
  /** Reloads the signed-in user (after sign-in or a profile change). */
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

export const SessionContext = createContext<Session>({
  user: null,
  info: null,
  refresh: async () => {},
  signOut: async () => {},
});

export function useSession(): Session {
  return useContext(SessionContext);
}

/** The host clients push to (`docker pull <host>/<project>/<repo>`). */
export function registryHost(info: SystemInfo | null): string {
  const url = info?.registry_url || info?.external_url || location.host;
  return url.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

/** Harbor's project role ids. */
export const ROLE = { projectAdmin: 1, developer: 2, guest: 3, maintainer: 4, limitedGuest: 5 } as const;
