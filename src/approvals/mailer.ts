import { createTransport } from "nodemailer";
import type { SmtpConfig } from "../config.js";

export interface EmailMessage {
  to: string[];
  subject: string;
  text: string;
}

/** Sends e-mail. One implementation, SMTP; without STEWARD_SMTP_URL nothing is sent. */
export interface Mailer {
  send(message: EmailMessage): Promise<void>;
  close(): void;
}

export function createSmtpMailer(config: SmtpConfig): Mailer {
  const transport = createTransport(config.url);
  return {
    async send(message) {
      await transport.sendMail({
        from: config.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
      });
    },
    close: () => transport.close(),
  };
}
