/**
 * Typed domain errors. A `DomainError` carries a machine-readable `code` and a message written
 * for the person who submitted the job: it is what the job records as its failure reason.
 * `retryable` tells the pipeline whether trying the same input again can succeed; a problem
 * with the document itself never can, so such a message goes to failure at once rather than
 * through the retry/dead-letter path.
 */
export class DomainError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { name: string; code: string; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export type ExtractionErrorCode =
  /** The content type is not one the split stage can read. */
  | "UNSUPPORTED_TYPE"
  /** The bytes are not what the declared content type says (e.g. a PNG uploaded as a PDF). */
  | "TYPE_MISMATCH"
  /** The PDF needs a password to open. */
  | "ENCRYPTED_PDF"
  /** The file is damaged or truncated and cannot be parsed. */
  | "CORRUPT_DOCUMENT"
  /** The document parsed but holds no text (empty file, scanned/image-only PDF). */
  | "NO_TEXT";

/** The document cannot be turned into text. Never retryable: the same bytes fail the same way. */
export class ExtractionError extends DomainError {
  declare readonly code: ExtractionErrorCode;

  constructor(code: ExtractionErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, retryable: false });
  }
}

export const isDomainError = (error: unknown): error is DomainError => error instanceof DomainError;

/** A pipeline message that cannot fit the topic's size limit: the same content always fails. */
export class MessageTooLarge extends DomainError {
  constructor(bytes: number, maxBytes: number) {
    super("MESSAGE_TOO_LARGE", `a pipeline message of ${bytes} bytes exceeds the ${maxBytes}-byte limit of the topic`, {
      retryable: false,
    });
  }
}
