// The subscriptions the dashboard listens to. Each only says "something changed";
// pages refetch what they show with their own queries.

export const AGENT_EVENTS = 'subscription AgentEvents { agentEvents { __typename } }';

export const INSTALL_TOKEN =
  'subscription InstallToken($id: ID!) { installToken(id: $id) { id status agent { agentId hostname } } }';

export const AGENT_METRICS = 'subscription AgentMetrics($agentId: ID!) { agentMetrics(agentId: $agentId) { __typename } }';

/** For views that only care about one agent: keep the event if it may concern it. */
export function aboutAgent(agentId) {
  return (data) => {
    const event = data && data.agentEvents;
    if (!event || !('agentId' in event) || event.agentId == null) return true;
    return event.agentId === agentId;
  };
}
