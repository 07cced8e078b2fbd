import { NavLink, Outlet } from "react-router";
import { useSession } from "../auth/session";

const SECTIONS = [
  { to: "/agents", label: "Agents" },
  { to: "/register", label: "Register" },
  { to: "/governance", label: "Governance" },
  { to: "/lineage", label: "Lineage" },
  { to: "/approvals", label: "Approvals" },
  { to: "/managed", label: "Managed agents" },
  { to: "/jobs", label: "Jobs" },
];

/** The frame around every signed-in screen: the sections and sign-out. */
export function Layout() {
  const { signOut } = useSession();
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="/agents">
          Steward
        </a>
        <nav aria-label="Sections">
          <ul>
            {SECTIONS.map((section) => (
              <li key={section.to}>
                <NavLink to={section.to}>{section.label}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="link-button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="content">
        <Outlet />
      </main>
    </div>
  );
}
