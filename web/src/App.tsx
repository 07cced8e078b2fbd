import { BrowserRouter, Navigate, Route, Routes } from "react-router";
import { useSession } from "./auth/session";
import { Layout } from "./components/Layout";
import { AgentDetailPage } from "./pages/agents/AgentDetailPage";
import { AgentsPage } from "./pages/agents/AgentsPage";
import { ApprovalDetailPage } from "./pages/approvals/ApprovalDetailPage";
import { ApprovalsPage } from "./pages/approvals/ApprovalsPage";
import { GovernancePage } from "./pages/governance/GovernancePage";
import { JobPage } from "./pages/jobs/JobPage";
import { JobsPage } from "./pages/jobs/JobsPage";
import { LineagePage } from "./pages/lineage/LineagePage";
import { TracePage } from "./pages/lineage/TracePage";
import { ManagedAgentPage } from "./pages/managed/ManagedAgentPage";
import { ManagedAgentsPage } from "./pages/managed/ManagedAgentsPage";
import { RegisterWizard } from "./pages/register/RegisterWizard";
import { SignIn } from "./pages/SignIn";

export function App() {
  const { api } = useSession();
  if (!api) return <SignIn />;
  return (
    <BrowserRouter>
      <Routes>
        <Route element={<Layout />}>
          <Route index element={<Navigate to="/agents" replace />} />
          <Route path="agents" element={<AgentsPage />} />
          <Route path="agents/:id" element={<AgentDetailPage />} />
          <Route path="register" element={<RegisterWizard />} />
          <Route path="governance" element={<GovernancePage />} />
          <Route path="lineage" element={<LineagePage />} />
          <Route path="lineage/:invocationId" element={<TracePage />} />
          <Route path="approvals" element={<ApprovalsPage />} />
          <Route path="approvals/:id" element={<ApprovalDetailPage />} />
          <Route path="managed" element={<ManagedAgentsPage />} />
          <Route path="managed/:id" element={<ManagedAgentPage />} />
          <Route path="jobs" element={<JobsPage />} />
          <Route path="jobs/:id" element={<JobPage />} />
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no such page. Pick a section above.</p>
    </section>
  );
}
